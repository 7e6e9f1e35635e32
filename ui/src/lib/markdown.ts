// Model output as HTML: marked for the markdown, highlight.js for code, DOMPurify last, so
// whatever the model writes never runs script, never styles the app, and never loads anything
// from the network: images become links the person can click, and every link opens outside
// the app (see `open_link` in the Rust side).

import { Marked, type Token, type Tokens } from "marked";
import DOMPurify from "dompurify";
import type { HLJSApi } from "highlight.js";

/** highlight.js with its common languages: a third of the app's script, so it is loaded only
 * when a first code block is shown ([`loadHighlighter`]); until it is, code is plain text. */
let hljs: HLJSApi | null = null;
let loading: Promise<void> | null = null;
let loaded!: () => void;

/** Resolves once code is highlighted (without asking for the highlighter to load). */
export const highlighterLoaded = new Promise<void>((resolve) => (loaded = resolve));

/** Load the code highlighter (once); resolves when code is highlighted from then on. */
export function loadHighlighter(): Promise<void> {
  loading ??= import("highlight.js/lib/common").then((m) => {
    hljs = m.default;
    loaded();
  });
  return loading;
}

/** Whether code is highlighted yet. */
export function highlighting(): boolean {
  return hljs !== null;
}

/** Code blocks longer than this are not auto-detected (detection is slow on big blocks). */
const AUTO_DETECT_MAX = 4000;

/** Set while the block still being written is rendered: its code is not auto-detected (that
 * tries every language, on every frame) until the block is finished. */
let drafting = false;

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    code({ text, lang }: Tokens.Code): string {
      const language = (lang ?? "").trim().split(/\s+/)[0].toLowerCase();
      let html: string;
      let shown = language;
      if (!hljs) {
        void loadHighlighter();
        html = escapeHtml(text);
      } else if (language && hljs.getLanguage(language)) {
        html = hljs.highlight(text, { language, ignoreIllegals: true }).value;
      } else if (!language && !drafting && text.length <= AUTO_DETECT_MAX) {
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

const PURIFY = {
  // No media, frames, forms, styles or SVG from a model: text, lists, tables, code, links.
  FORBID_TAGS: ["style", "img", "video", "audio", "source", "picture", "iframe", "object", "embed", "form", "input",
    "button", "textarea", "select", "svg", "math", "link", "meta", "base"],
  FORBID_ATTR: ["style", "srcset", "src", "action", "formaction", "id", "name"],
  ALLOW_DATA_ATTR: false,
};

function sanitize(html: string): string {
  hook();
  return DOMPurify.sanitize(html, PURIFY);
}

/**
 * One message's markdown as a list of top-level blocks (paragraphs, lists, code blocks…),
 * each sanitised HTML on its own. A streaming reply grows at its end, so every block but the
 * last is finished: its HTML is kept (by its source) and not made again, and the DOM keeps its
 * nodes — each new token costs the last block, not the whole reply.
 */
export class Blocks {
  private made = new Map<string, string>();
  private highlighted = false;

  /** The blocks of `text`; `open` when its last block may still grow (the reply streams). */
  render(text: string, open: boolean): string[] {
    // Lexing the whole text is cheap (about 1 ms for 20 KB, measured in node) and keeps
    // markdown's rules whole: a later line can still turn a paragraph into a heading or a
    // list into a loose one, and then the block's source changes and it is made again.
    const tokens = marked.lexer(text);
    // Blocks made before the highlighter came are made again with it.
    if (this.highlighted !== highlighting()) {
      this.highlighted = highlighting();
      this.made.clear();
    }
    // A reference link ("[docs][1]") is resolved by the lexer from a definition that may come
    // later in the text: blocks are remembered under the definitions they were made with.
    const refs = Object.keys(tokens.links).length ? JSON.stringify(tokens.links) : "";
    const made = new Map<string, string>();
    const out: string[] = [];
    tokens.forEach((token: Token, i: number) => {
      if (token.type === "space") return;
      const draft = open && i === tokens.length - 1;
      const key = refs + token.raw;
      let html = draft ? undefined : (this.made.get(key) ?? made.get(key));
      if (html === undefined) {
        drafting = draft;
        try {
          html = sanitize(marked.parser([token]));
        } finally {
          drafting = false;
        }
      }
      if (!draft) made.set(key, html);
      out.push(html);
    });
    // Only the blocks still shown are kept: the cache is never bigger than the message.
    this.made = made;
    return out;
  }
}
