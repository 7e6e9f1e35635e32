// When the page has painted (two frames), tell the app the wall-clock time it happened.
requestAnimationFrame(() => requestAnimationFrame(() => window.__TAURI_INTERNALS__.invoke("painted", { at: performance.timeOrigin + performance.now() })));
