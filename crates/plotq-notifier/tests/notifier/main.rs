//! The SSE endpoint driven in-process (`oneshot`) over memory ports, behind the same
//! edge as in production: who may subscribe (`auth`), what a request may ask for
//! (`limits`), what watching views costs (`views`), replay after a reconnect (`replay`)
//! and how long a stream lives (`lifetime`). `helpers` is the `Fixture`.

mod auth;
mod helpers;
mod lifetime;
mod limits;
mod replay;
mod views;
