// The keyboard shortcuts, in one table: the help overlay lists it, and the window's key
// handler asks `actionFor` which action a key press means.

export type Action = "new-chat" | "focus-search" | "stop" | "next-conversation" | "previous-conversation" | "help" | "focus-composer";

export interface Shortcut {
  action: Action;
  keys: string;
  what: string;
}

const mod = typeof navigator !== "undefined" && /Mac/.test(navigator.platform) ? "⌘" : "Ctrl";

export const SHORTCUTS: Shortcut[] = [
  { action: "new-chat", keys: `${mod}+N`, what: "New conversation" },
  { action: "focus-search", keys: `${mod}+K`, what: "Search all conversations" },
  { action: "focus-composer", keys: `${mod}+L`, what: "Go to the message box" },
  { action: "stop", keys: "Esc", what: "Stop the reply" },
  { action: "previous-conversation", keys: "Alt+↑", what: "Previous conversation" },
  { action: "next-conversation", keys: "Alt+↓", what: "Next conversation" },
  { action: "help", keys: `${mod}+/`, what: "Show these shortcuts" },
];

/** The action a key press asks for, or null. Enter and Shift+Enter belong to the message box. */
export function actionFor(e: Pick<KeyboardEvent, "key" | "ctrlKey" | "metaKey" | "altKey" | "shiftKey">): Action | null {
  const cmd = e.ctrlKey || e.metaKey;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  if (cmd && !e.altKey) {
    if (key === "n") return "new-chat";
    if (key === "k") return "focus-search";
    if (key === "l") return "focus-composer";
    if (key === "/") return "help";
  }
  if (e.altKey && !cmd && key === "ArrowUp") return "previous-conversation";
  if (e.altKey && !cmd && key === "ArrowDown") return "next-conversation";
  if (!cmd && !e.altKey && !e.shiftKey && key === "Escape") return "stop";
  if (!cmd && !e.altKey && key === "F1") return "help";
  return null;
}
