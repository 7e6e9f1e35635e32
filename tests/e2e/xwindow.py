#!/usr/bin/env python3
"""What a window manager does to an app's window, for the end-to-end tests under Xvfb (which
has no window manager): find the top-level window of a process, ask it to close as a title
bar's close button does (WM_DELETE_WINDOW, so the app sees a close request it may refuse),
and report whether it is mapped (shown) and its size.

    xwindow.py state PID [TITLE]   -> "mapped WIDTHxHEIGHT" | "unmapped WIDTHxHEIGHT" | "none"
    xwindow.py close PID [TITLE]   -> sends WM_DELETE_WINDOW to the process's window
    xwindow.py resize PID W H      -> resizes it (as dragging its border would)
    xwindow.py shot - FILE          -> the whole screen as a PNG (what a failed dialog showed)
    xwindow.py keys PID TITLE KEY...  -> focuses the window titled TITLE (a file dialog) and
                                         types: KEY is `text:CHARS`, a key (`Return`) or a
                                         chord (`ctrl+a`), sent as real key events (XTEST)

The window is the one titled TITLE, else the first with a plain (Latin-1) title: the main
window, "Gatehouse" (the jobs window's "Gatehouse — Jobs" is not Latin-1).

Needs python3-xlib (scripts/bootstrap installs it) and $DISPLAY.
"""

import struct
import sys
import zlib

from Xlib import X, XK, display
from Xlib.ext import xtest
from Xlib.protocol import event

# Characters of a path that have a keysym name of their own.
NAMED = {"/": "slash", "-": "minus", ".": "period", "_": "underscore", " ": "space", "~": "asciitilde", ":": "colon"}
MODIFIERS = {"ctrl": "Control_L", "shift": "Shift_L", "alt": "Alt_L"}


def press(d, keysym_name, modifiers=()):
    """Press and release a key (with modifiers held), as a keyboard would."""
    keysym = XK.string_to_keysym(keysym_name)
    code = d.keysym_to_keycode(keysym)
    if not code:
        sys.exit(f"no key for {keysym_name!r}")
    held = [d.keysym_to_keycode(XK.string_to_keysym(MODIFIERS[m])) for m in modifiers]
    # A character on a key's shifted level (`_`, `~`, capitals) needs Shift.
    if d.keycode_to_keysym(code, 0) != keysym:
        held.append(d.keysym_to_keycode(XK.string_to_keysym("Shift_L")))
    for m in held:
        xtest.fake_input(d, X.KeyPress, m)
    xtest.fake_input(d, X.KeyPress, code)
    xtest.fake_input(d, X.KeyRelease, code)
    for m in reversed(held):
        xtest.fake_input(d, X.KeyRelease, m)
    d.sync()


def focused_in(d, w):
    """Whether the keyboard's focus is `w` or inside it."""
    f = d.get_input_focus().focus
    root = d.screen().root
    while isinstance(f, type(w)) and f.id != root.id:
        if f.id == w.id:
            return True
        f = f.query_tree().parent
    return False


def keys(d, w, specs):
    """Type into `w`; stop at the first key the window would not get (it closed, and the focus
    went back to the window under it, which must not get the rest)."""
    w.set_input_focus(X.RevertToParent, X.CurrentTime)
    d.sync()
    strokes = []
    for spec in specs:
        if spec.startswith("text:"):
            strokes += [(NAMED.get(ch, ch), ()) for ch in spec[5:]]
        else:
            *mods, key = spec.split("+")
            strokes.append((key if len(key) > 1 else key.lower(), mods))
    for key, mods in strokes:
        if not focused_in(d, w):
            return
        press(d, key, mods)


def name_of(d, w):
    """The window's title as the app set it (_NET_WM_NAME is UTF-8; WM_NAME may not be)."""
    prop = w.get_full_property(d.intern_atom("_NET_WM_NAME"), d.intern_atom("UTF8_STRING"))
    if prop:
        value = prop.value
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return w.get_wm_name()


def windows_of(d, pid, title=None):
    """The process's top-level windows that have a title (GTK's frame window, not its helpers),
    or the one titled `title`."""
    pid_atom = d.intern_atom("_NET_WM_PID")
    found = []
    stack = list(d.screen().root.query_tree().children)
    while stack:
        w = stack.pop()
        try:
            prop = w.get_full_property(pid_atom, X.AnyPropertyType)
            if prop and prop.value[0] == pid and (w.get_wm_name() if title is None else name_of(d, w) == title):
                found.append(w)
            stack.extend(w.query_tree().children)
        except Exception:  # a window that went away while we looked
            continue
    return found


def shot(d, path):
    """The root window as an RGB PNG (stdlib only: Xvfb's 24-bit ZPixmap is BGRX)."""
    root = d.screen().root
    g = root.get_geometry()
    raw = root.get_image(0, 0, g.width, g.height, X.ZPixmap, 0xFFFFFFFF).data
    rows = bytearray()
    for y in range(g.height):
        line = raw[y * g.width * 4 : (y + 1) * g.width * 4]
        rgb = bytearray(g.width * 3)
        rgb[0::3], rgb[1::3], rgb[2::3] = line[2::4], line[1::4], line[0::4]
        rows += b"\0" + rgb

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", g.width, g.height, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(bytes(rows), 6)) + chunk(b"IEND", b""))


def main():
    if sys.argv[1] == "shot":
        shot(display.Display(), sys.argv[3])
        return
    cmd, pid = sys.argv[1], int(sys.argv[2])
    title = sys.argv[3] if cmd in ("state", "close", "keys") and len(sys.argv) > 3 else None
    d = display.Display()
    found = windows_of(d, pid, title)
    if cmd == "state":
        if not found:
            print("none")
            return
        w = found[0]
        g = w.get_geometry()
        mapped = w.get_attributes().map_state == X.IsViewable
        print(f"{'mapped' if mapped else 'unmapped'} {g.width}x{g.height}")
        return
    if not found:
        sys.exit(f"no window of process {pid}")
    w = found[0]
    if cmd == "close":
        protocols = d.intern_atom("WM_PROTOCOLS")
        delete = d.intern_atom("WM_DELETE_WINDOW")
        msg = event.ClientMessage(window=w, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0]))
        w.send_event(msg, event_mask=X.NoEventMask)
    elif cmd == "keys":
        keys(d, w, sys.argv[4:])
    elif cmd == "resize":
        w.configure(width=int(sys.argv[3]), height=int(sys.argv[4]))
    else:
        sys.exit(f"unknown command {cmd}")
    d.sync()


if __name__ == "__main__":
    main()
