//! The vault suite (`tests/common`) against PostgreSQL (`$RAMPART_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`): a fresh table per case, dropped afterwards even
//! when the case fails. These tests fail when the server is unreachable.

mod common;

use std::future::Future;
use std::sync::Arc;

async fn run<F, Fut>(body: F)
where
    F: FnOnce(Arc<common::Ctx>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let ctx = Arc::new(common::Ctx {
        target: common::Target::postgres().await,
        dir: tempfile::tempdir().unwrap(),
    });
    let outcome = tokio::spawn(body(ctx.clone())).await;
    ctx.target.cleanup().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

vault_suite!(run);
