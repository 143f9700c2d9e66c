//! The WeChat family: the official account ([`official`], route `/wechat/…`) and WeCom ([`wecom`], route
//! `/wecom/…`) are two channels that share one protocol toolkit — the encrypted envelope read before anything
//! else ([`encrypted`]), the XML they speak ([`xml`]), their settings (token, EncodingAESKey, app/corp id;
//! [`settings`]) and the passive reply sealed back to the caller ([`reply`]). The AES and signature primitives
//! themselves live with every other secret comparison in [`crate::crypto::wxbiz`].

mod encrypted;
pub mod official;
mod reply;
mod settings;
pub mod wecom;
mod xml;

pub use official::WeChat;
pub use wecom::WeCom;
