//! The vault suite (`tests/common`) against redb: a fresh file per case.

mod common;

use std::future::Future;
use std::sync::Arc;

async fn run<F, Fut>(body: F)
where
    F: FnOnce(Arc<common::Ctx>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let ctx = Arc::new(common::Ctx {
        target: common::Target::redb(dir.path()),
        dir,
    });
    body(ctx).await;
}

vault_suite!(run);
