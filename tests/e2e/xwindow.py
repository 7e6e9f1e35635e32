#!/usr/bin/env python3
"""What a window manager does to an app's window, for the end-to-end tests under Xvfb (which
has no window manager): find the top-level window of a process, ask it to close as a title
bar's close button does (WM_DELETE_WINDOW, so the app sees a close request it may refuse),
and report whether it is mapped (shown) and its size.

    xwindow.py state PID           -> "mapped WIDTHxHEIGHT" | "unmapped WIDTHxHEIGHT" | "none"
    xwindow.py close PID           -> sends WM_DELETE_WINDOW to the process's window
    xwindow.py resize PID W H      -> resizes it (as dragging its border would)

Needs python3-xlib (scripts/bootstrap installs it) and $DISPLAY.
"""

import sys

from Xlib import X, display
from Xlib.protocol import event


def windows_of(d, pid):
    """The process's top-level windows that have a title (GTK's frame window, not its helpers)."""
    pid_atom = d.intern_atom("_NET_WM_PID")
    found = []
    stack = list(d.screen().root.query_tree().children)
    while stack:
        w = stack.pop()
        try:
            prop = w.get_full_property(pid_atom, X.AnyPropertyType)
            if prop and prop.value[0] == pid and w.get_wm_name():
                found.append(w)
            stack.extend(w.query_tree().children)
        except Exception:  # a window that went away while we looked
            continue
    return found


def main():
    cmd, pid = sys.argv[1], int(sys.argv[2])
    d = display.Display()
    found = windows_of(d, pid)
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
    elif cmd == "resize":
        w.configure(width=int(sys.argv[3]), height=int(sys.argv[4]))
    else:
        sys.exit(f"unknown command {cmd}")
    d.sync()


if __name__ == "__main__":
    main()
