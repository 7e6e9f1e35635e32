// The window's first frame: the app's outline (index.html) painted before the app is mounted.
// Two animation frames after this script (the first may come before layout), the time of that
// frame is kept for the app to report (see main.ts and src-tauri's windows.rs), and the app is
// mounted. A classic script, so it runs while the page is parsed, as a bare page's would.
window.__gatehouse = { painted: new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.timeOrigin + performance.now())))) };
