//! Every primary of a Redis Cluster, for `/readyz`: each must answer and hold
//! every script in its cache.
//!
//! A script call reaches one primary only (the one owning the train's slot),
//! and each primary has its own script cache, emptied by a restart, a
//! failover or `SCRIPT FLUSH`. Requests survive that anyway (`eval` falls
//! back to `EVAL`), but readiness should say whether the whole cluster can
//! serve, so it asks each primary in fred's slot table (`SCRIPT EXISTS` of
//! every SHA1, sent there with `with_cluster_node`) and loads what is missing
//! on that primary. On a single Redis there is nothing to do here.

use fred::{
    interfaces::ClusterInterface,
    prelude::{ClientLike, Error as RedisError},
    types::{config::Server, ClusterHash, CustomCommand, Value},
};

use super::{Store, StoreError};

impl Store {
    /// Ok when every primary answers and has every script (after loading the
    /// ones it lacked). Always Ok on a single Redis.
    pub async fn check_primaries(&self) -> Result<(), StoreError> {
        let client = self.pool.next();
        if !client.is_clustered() {
            return Ok(());
        }
        let primaries = client
            .cached_cluster_state()
            .map(|state| state.unique_primary_nodes())
            .unwrap_or_default();
        if primaries.is_empty() {
            return Err(StoreError::Unavailable("no cluster slot table yet".into()));
        }
        for server in primaries {
            self.bounded(self.scripts_on(&server))
                .await
                .map_err(|e| StoreError::Unavailable(format!("primary {server}: {e}")))?;
        }
        Ok(())
    }

    /// `SCRIPT EXISTS` of every script on one primary; `SCRIPT LOAD` there of
    /// each one it lacks.
    async fn scripts_on(&self, server: &Server) -> Result<(), RedisError> {
        let node = self.pool.next().with_cluster_node(server.clone());
        let script = || CustomCommand::new_static("SCRIPT", ClusterHash::Random, false);
        let all = self.scripts.all();
        let mut exists = vec!["EXISTS".to_owned()];
        exists.extend(all.iter().map(|s| s.sha1().to_string()));
        let cached: Vec<Value> = node.custom(script(), exists).await?;
        for (s, cached) in all.iter().zip(cached) {
            if cached.as_i64() != Some(1) {
                let lua = s.lua().map(|l| l.to_string()).unwrap_or_default();
                tracing::info!(%server, sha1 = %s.sha1(), "reloading a script missing on a primary");
                let _: Value = node.custom(script(), vec!["LOAD".to_owned(), lua]).await?;
            }
        }
        Ok(())
    }
}
