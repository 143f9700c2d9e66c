//! `AccountWriter`: one Durable Object per channel/account. It holds the account's newest record (strongly
//! consistent: the source of truth), serializes writes so that `If-Match` is exact, and replicates each change
//! to KV (the record the hot path reads, the e-mail address index, the audit entry).

use serde_json::json;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use super::{random_nonce, store};
use crate::{emit, now_ms, EnvBindings};
use sekisho::crypto::seal::{SealingKeys, SEALING_KEY_BINDING};
use sekisho::log;
use sekisho::registry::api::{apply, AccountPath, RegistryError, WriterCall};
use sekisho::registry::audit::retention_s;
use sekisho::registry::fields::channel_names;
use sekisho::registry::record::StoredAccount;
use sekisho::registry::writer::{
    address_taken, answer, plan, ReplicaPlan, WriterReply, WriterRequest,
};

const RECORD: &str = "record";

#[durable_object]
pub struct AccountWriter {
    state: State,
    env: Env,
}

impl DurableObject for AccountWriter {
    fn new(state: State, env: Env) -> Self {
        AccountWriter { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let request: WriterRequest = req.json().await?;
        let reply = self.perform(&request).await.unwrap_or_else(|error| {
            if matches!(error, RegistryError::Unavailable) {
                emit(&log::operation_failed(
                    "registry write",
                    "the store refused",
                ));
            }
            WriterReply::error(&error)
        });
        Response::from_json(&reply)
    }
}

impl AccountWriter {
    async fn perform(
        &self,
        request: &WriterRequest,
    ) -> std::result::Result<WriterReply, RegistryError> {
        let storage = self.state.storage();
        let existing: Option<StoredAccount> = storage
            .get(RECORD)
            .await
            .map_err(|_| RegistryError::Unavailable)?;
        if let WriterCall::Get = request.call {
            return Ok(WriterReply {
                status: 200,
                body: json!({ "record": existing }),
                etag: None,
            });
        }
        let bindings = EnvBindings::of(&self.env);
        let keys = SealingKeys::from_bindings(&bindings)
            .map_err(|_| RegistryError::Misconfigured(SEALING_KEY_BINDING.to_owned()))?;
        let path = AccountPath {
            channel: channel_names()
                .find(|name| *name == request.channel)
                .ok_or(RegistryError::NotFound)?,
            account: request.account.clone(),
        };
        let mut no_randomness = false;
        let mut nonces = || {
            random_nonce().unwrap_or_else(|| {
                no_randomness = true;
                [0; 12]
            })
        };
        let now = now_ms();
        let applied = apply(
            &path,
            existing.as_ref(),
            &request.call,
            &keys,
            &mut nonces,
            now,
        )?;
        if no_randomness {
            return Err(RegistryError::Unavailable);
        }
        let replica = plan(request, existing.as_ref(), &applied, now);
        self.replicate(request, &replica).await?;
        match &applied.record {
            Some(record) if applied.change.is_some() => storage
                .put(RECORD, record)
                .await
                .map_err(|_| RegistryError::Unavailable)?,
            Some(_) => {}
            None => {
                storage
                    .delete(RECORD)
                    .await
                    .map_err(|_| RegistryError::Unavailable)?;
            }
        }
        Ok(answer(request, &applied, &keys))
    }

    /// Address claims are checked before anything is written; then the KV replica, the index and the audit
    /// entry. The object's own storage is written last, so a failure here leaves the old version in force
    /// and the admin's retry repeats the whole write.
    async fn replicate(
        &self,
        request: &WriterRequest,
        replica: &ReplicaPlan,
    ) -> std::result::Result<(), RegistryError> {
        let Some(kv) = store(&self.env) else {
            return Err(RegistryError::Misconfigured(
                sekisho::registry::STORE_BINDING.to_owned(),
            ));
        };
        let failed = |_| RegistryError::Unavailable;
        for key in &replica.claim_addresses {
            let owner = kv.get(key).text().await.map_err(failed)?;
            if address_taken(owner.as_deref(), request) {
                return Err(RegistryError::AddressTaken {
                    address: key.trim_start_matches("m/").to_owned(),
                    owner: owner.unwrap_or_default(),
                });
            }
        }
        if let Some((key, value)) = &replica.put_record {
            kv.put(key, value.as_str())
                .map_err(failed)?
                .execute()
                .await
                .map_err(failed)?;
        }
        if let Some(key) = &replica.delete_record {
            kv.delete(key).await.map_err(failed)?;
        }
        for (key, owner) in &replica.put_addresses {
            kv.put(key, owner.as_str())
                .map_err(failed)?
                .execute()
                .await
                .map_err(failed)?;
        }
        for key in &replica.delete_addresses {
            kv.delete(key).await.map_err(failed)?;
        }
        if let Some((key, entry)) = &replica.audit {
            let bindings = EnvBindings::of(&self.env);
            // The entry is also the key's metadata, so that one list call reads a page of the trail.
            let metadata: serde_json::Value = serde_json::from_str(entry).unwrap_or_default();
            kv.put(key, entry.as_str())
                .map_err(failed)?
                .metadata(metadata)
                .map_err(failed)?
                .expiration_ttl(retention_s(&bindings))
                .execute()
                .await
                .map_err(failed)?;
        }
        Ok(())
    }
}
