// The page's entry: the styles, then the app once the window shows its outline.
//
// index.html paints the app's outline first (public/first-paint.js keeps the time of that
// frame). Only then is the app itself loaded, parsed and mounted over it (./app.ts): parsing
// its code before that frame would hold the frame back by as long (measured with
// scripts/bench-desktop; figures in docs/performance.md).
// highlight.js's light theme first, so the app's dark overrides (app.css) come after it.
import "highlight.js/styles/github.css";
import "./app.css";

const { painted } = (window as unknown as { __gatehouse: { painted: Promise<number> } }).__gatehouse;

export default painted.then(async (at) => (await import("./app")).start(at));
