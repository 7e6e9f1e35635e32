// The app, mounted over the outline that index.html painted.
import { mount } from "svelte";
import { getCurrentWindow } from "@tauri-apps/api/window";
import App from "./App.svelte";
import { api } from "./lib/api";

/** Mount the app; `at` is when the window's first frame (the outline) was painted. */
export function start(at: number) {
  const target = document.getElementById("app")!;
  target.replaceChildren();
  const app = mount(App, { target });
  if (getCurrentWindow().label !== "main") return app;
  // Tell the app the window has painted, so it knows WebKit is drawing (without this it falls
  // back to another renderer, see windows.rs), with the times of the outline's frame and of
  // the mounted app's first frame (two animation frames on, as first-paint.js counts). The call
  // itself is served once the engine is open.
  void new Promise<number>((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.timeOrigin + performance.now()))))
    .then((ready) => api.painted(at, ready))
    .catch(() => {});
  return app;
}
