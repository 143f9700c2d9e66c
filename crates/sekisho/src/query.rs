//! Query strings decoded the way webhook providers mean them: percent-decoding only, no form semantics
//! (`+` is a base64 character in WeChat `echostr`/`msg_signature` and in Chatwork signatures).

use percent_encoding::percent_decode_str;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(key), decode(value))
            })
            .collect();
        Query { pairs }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_stays_plus_and_percent_escapes_decode() {
        let query = Query::parse(Some("echostr=P9n%2Fq+X%3D%3D&a=1&flag"));
        assert_eq!(query.get("echostr"), Some("P9n/q+X=="));
        assert_eq!(query.get("a"), Some("1"));
        assert_eq!(query.get("flag"), Some(""));
        assert_eq!(query.get("missing"), None);
    }
}
