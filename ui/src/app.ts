// The app, mounted over the outline that index.html painted.
import { mount } from "svelte";
import App from "./App.svelte";
import { api } from "./lib/api";
import { painted } from "./lib/frame";

/** Mount the app; `at` is when the window's first frame (the outline) was painted. */
export function start(at: number) {
  const target = document.getElementById("app")!;
  target.replaceChildren();
  const app = mount(App, { target });
  // Tell the app the window has painted, so it knows WebKit is drawing (without this it falls
  // back to another renderer, see windows.rs), with the times of the outline's frame and of
  // the mounted app's first frame. The call itself is served once the engine is open.
  void painted()
    .then((ready) => api.painted(at, ready))
    .catch(() => {});
  return app;
}
