import { mount } from "svelte";
import "./app.css";
import "highlight.js/styles/github.css";
import App from "./App.svelte";
import { api } from "./lib/api";

const app = mount(App, { target: document.getElementById("app")! });

// Tell the app the window has painted (two frames: the first may come before layout), so it
// knows WebKit is drawing; without this it falls back to another renderer (see windows.rs).
requestAnimationFrame(() => requestAnimationFrame(() => void api.painted().catch(() => {})));

export default app;
