import { mount } from "svelte";
// highlight.js's light theme first, so the app's dark overrides (app.css) come after it.
import "highlight.js/styles/github.css";
import "./app.css";
import App from "./App.svelte";
import { api } from "./lib/api";

const app = mount(App, { target: document.getElementById("app")! });

// Tell the app the window has painted (two frames: the first may come before layout), so it
// knows WebKit is drawing; without this it falls back to another renderer (see windows.rs).
// The time of that frame goes with it: the call itself waits until the engine is open.
requestAnimationFrame(() => requestAnimationFrame(() => void api.painted(performance.timeOrigin + performance.now()).catch(() => {})));

export default app;
