//! Dashboard views: one panel's plot (services, kind, window, theme, size, options),
//! named by a stable key so every notifier replica, the refresher and the browser agree
//! on it, and `ViewState`, what is known of a view's latest render.
//!
//! This module only gathers them: a view is a plot named by a key and checked by the plot
//! rules, so `View` (its key format, `View::parse`, `View::spec`) lives with the plots in
//! `plot/view.rs`; `ViewState` is stored and shared between notifier replicas, so it is a
//! wire shape (`wire/state.rs`). Both are used by the wire shapes and the job state (which
//! validate view keys), and this keeps the module graph a tree.

pub use crate::plot::view::{MAX_VIEW_KEY_LEN, MAX_VIEWS_PER_CONNECTION, View};
pub use crate::wire::ViewState;
