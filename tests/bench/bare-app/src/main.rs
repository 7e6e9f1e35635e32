//! A bare Tauri app: one empty window that says when it first painted, the same way Gatehouse
//! does (the page waits two animation frames, then calls `painted`). The desktop benchmark
//! measures Gatehouse against it: start to first paint, and memory at rest.

use std::time::Instant;

static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

#[tauri::command]
fn painted() {
    let ms = START.get().map(|s| s.elapsed().as_millis()).unwrap_or_default();
    eprintln!("first paint after {ms} ms");
}

fn main() {
    START.get_or_init(Instant::now);
    tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![painted])
        .run(tauri::generate_context!())
        .expect("the bare app runs");
}
