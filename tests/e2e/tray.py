#!/usr/bin/env python3
"""Read a tray icon (StatusNotifierItem) and its menu (com.canonical.dbusmenu) as a panel
would, or act on it: the end-to-end tests' hands on the tray. Uses python3-gi.

usage: tray.py BUS PATH read               -> JSON: tooltip, status, title, icon digest, menu labels
       tray.py BUS PATH click LABEL-PREFIX  -> clicks the first menu entry whose label starts so
       tray.py BUS PATH activate            -> a left click on the icon
"""
import hashlib
import json
import sys

from gi.repository import Gio, GLib

bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)


def call(dest, path, iface, method, args, rtype):
    return bus.call_sync(dest, path, iface, method, args, GLib.VariantType(rtype), Gio.DBusCallFlags.NONE, 5000, None).unpack()


def menu(name, path):
    _rev, layout = call(name, path, "com.canonical.dbusmenu", "GetLayout", GLib.Variant("(iias)", (0, -1, [])), "(u(ia{sv}av))")
    out = []

    def walk(node, depth):
        nid, props, kids = node
        if depth:
            out.append({"id": nid, "label": props.get("label", ""), "type": props.get("type", "standard"), "enabled": props.get("enabled", True)})
        for k in kids:
            walk(k, depth + 1)

    walk(layout, 0)
    return out


name, path, what = sys.argv[1], sys.argv[2], sys.argv[3]
props = call(name, path, "org.freedesktop.DBus.Properties", "GetAll", GLib.Variant("(s)", ("org.kde.StatusNotifierItem",)), "(a{sv})")[0]
if what == "read":
    _icon_name, _icon, title, description = props["ToolTip"]
    pixmaps = props.get("IconPixmap", [])
    print(json.dumps({
        "tooltip": {"title": title, "description": description},
        "status": props["Status"],
        "title": props["Title"],
        # The icon as drawn: a digest of its largest pixmap (it differs from state to state).
        "icon": hashlib.sha256(bytes(max(pixmaps, key=lambda p: p[0])[2])).hexdigest()[:16] if pixmaps else None,
        "menu": menu(name, props["Menu"]),
    }))
elif what == "click":
    entries = [e for e in menu(name, props["Menu"]) if e["label"].startswith(sys.argv[4])]
    if not entries:
        sys.exit(f"no menu entry starts with {sys.argv[4]!r}")
    call(name, props["Menu"], "com.canonical.dbusmenu", "Event", GLib.Variant("(isvu)", (entries[0]["id"], "clicked", GLib.Variant("i", 0), 0)), "()")
elif what == "activate":
    call(name, path, "org.kde.StatusNotifierItem", "Activate", GLib.Variant("(ii)", (0, 0)), "()")
