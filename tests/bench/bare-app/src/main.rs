//! A bare Tauri app: one empty window that says when it first painted, the same way Gatehouse
//! does (the page waits two animation frames, then calls `painted` with the wall-clock time of
//! that frame). The desktop benchmark measures Gatehouse against it: start to first paint, and
//! memory at rest.

use std::time::{SystemTime, UNIX_EPOCH};

static START: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

fn epoch_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or_default()
}

#[tauri::command]
fn painted(at: f64) {
    let ms = at - START.get().copied().unwrap_or_default();
    eprintln!("first paint after {ms:.0} ms (at {at:.0})");
}

fn main() {
    START.get_or_init(epoch_ms);
    tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![painted])
        .run(tauri::generate_context!())
        .expect("the bare app runs");
}
