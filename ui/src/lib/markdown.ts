// Model output as HTML: marked for the markdown, highlight.js for code, DOMPurify last, so
// whatever the model writes never runs script, never styles the app, and never loads anything
// from the network: images become links the person can click, and every link opens outside
// the app (see `open_link` in the Rust side).

import { Marked, type Tokens } from "marked";
import DOMPurify from "dompurify";
import hljs from "highlight.js/lib/common";

/** Code blocks longer than this are not auto-detected (detection is slow on big blocks). */
const AUTO_DETECT_MAX = 4000;

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    code({ text, lang }: Tokens.Code): string {
      const language = (lang ?? "").trim().split(/\s+/)[0].toLowerCase();
      let html: string;
      let shown = language;
      if (language && hljs.getLanguage(language)) {
        html = hljs.highlight(text, { language, ignoreIllegals: true }).value;
      } else if (!language && text.length <= AUTO_DETECT_MAX) {
        const auto = hljs.highlightAuto(text);
        html = auto.value;
        shown = auto.language ?? "";
      } else {
        html = escapeHtml(text);
      }
      const label = shown ? `<span class="code-lang">${escapeHtml(shown)}</span>` : "";
      return `<div class="code-block">${label}<pre><code class="hljs">${html}</code></pre></div>`;
    },
    image({ href, text }: Tokens.Image): string {
      // Never loaded by itself: shown as a link to open in the browser.
      const label = text ? `image: ${text}` : "image";
      return `<a href="${escapeAttr(href)}" class="image-link">${escapeHtml(label)}</a>`;
    },
  },
});

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

function escapeAttr(s: string): string {
  return escapeHtml(s);
}

const SAFE_LINK = /^(https?:|mailto:)/i;

let hooked = false;
function hook() {
  if (hooked) return;
  hooked = true;
  DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A") {
      const href = node.getAttribute("href") ?? "";
      if (SAFE_LINK.test(href)) {
        node.setAttribute("data-external", "true");
        node.setAttribute("rel", "noopener noreferrer");
        node.setAttribute("title", href);
      } else {
        node.removeAttribute("href");
      }
      node.removeAttribute("target");
    }
  });
}

/** Markdown to sanitised HTML, safe to put in the DOM. */
export function renderMarkdown(text: string): string {
  hook();
  const html = marked.parse(text, { async: false }) as string;
  return DOMPurify.sanitize(html, {
    // No media, frames, forms, styles or SVG from a model: text, lists, tables, code, links.
    FORBID_TAGS: ["style", "img", "video", "audio", "source", "picture", "iframe", "object", "embed", "form", "input",
      "button", "textarea", "select", "svg", "math", "link", "meta", "base"],
    FORBID_ATTR: ["style", "srcset", "src", "action", "formaction", "id", "name"],
    ALLOW_DATA_ATTR: false,
  });
}
