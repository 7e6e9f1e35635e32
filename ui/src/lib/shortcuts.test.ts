import { describe, expect, it } from "vitest";
import { actionFor, SHORTCUTS } from "./shortcuts";

const key = (k: string, mods: Partial<{ ctrlKey: boolean; metaKey: boolean; altKey: boolean; shiftKey: boolean }> = {}) => ({
  key: k, ctrlKey: false, metaKey: false, altKey: false, shiftKey: false, ...mods,
});

describe("keyboard shortcuts", () => {
  it("maps each listed shortcut to its action", () => {
    expect(actionFor(key("n", { ctrlKey: true }))).toBe("new-chat");
    expect(actionFor(key("N", { metaKey: true }))).toBe("new-chat");
    expect(actionFor(key("k", { ctrlKey: true }))).toBe("focus-search");
    expect(actionFor(key("l", { ctrlKey: true }))).toBe("focus-composer");
    expect(actionFor(key("/", { ctrlKey: true }))).toBe("help");
    expect(actionFor(key("F1"))).toBe("help");
    expect(actionFor(key("Escape"))).toBe("stop");
    expect(actionFor(key("ArrowUp", { altKey: true }))).toBe("previous-conversation");
    expect(actionFor(key("ArrowDown", { altKey: true }))).toBe("next-conversation");
  });

  it("leaves typing alone: plain keys, Enter and Shift+Enter are the message box's", () => {
    for (const k of ["n", "k", "Enter", "ArrowUp", " "]) expect(actionFor(key(k))).toBeNull();
    expect(actionFor(key("Enter", { shiftKey: true }))).toBeNull();
    expect(actionFor(key("Escape", { shiftKey: true }))).toBeNull();
  });

  it("lists every action it knows in the help overlay, once", () => {
    const actions = SHORTCUTS.map((s) => s.action);
    expect(new Set(actions).size).toBe(actions.length);
    expect(actions).toEqual(expect.arrayContaining(["new-chat", "focus-search", "stop", "next-conversation", "previous-conversation", "help"]));
  });
});
