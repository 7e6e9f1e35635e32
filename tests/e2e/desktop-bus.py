#!/usr/bin/env python3
"""The desktop's side of the session bus, for the end-to-end tests: a StatusNotifierWatcher
(where a tray icon registers; a panel would show it) and a notification server (where desktop
notifications go; a panel would pop them up). Both are real D-Bus peers the app talks to as it
would to a desktop's; nothing of the app is replaced. Uses python3-gi (a Debian package).

Prints one JSON line per thing that happens:
  {"ready": true}
  {"item": {"bus": NAME, "path": PATH}}              a tray icon registered
  {"notification": {"summary": S, "body": B, "app": A}}  a notification was shown
  {"tooltip": DESCRIPTION, "at": MS}                  a registered icon's tooltip changed (its
                                                      NewToolTip signal, read back as a panel
                                                      would; MS: Unix time in milliseconds)
"""
import json
import sys
import time

from gi.repository import Gio, GLib

WATCHER = """<node><interface name="org.kde.StatusNotifierWatcher">
 <method name="RegisterStatusNotifierItem"><arg type="s" name="service" direction="in"/></method>
 <method name="RegisterStatusNotifierHost"><arg type="s" name="service" direction="in"/></method>
 <property name="RegisteredStatusNotifierItems" type="as" access="read"/>
 <property name="IsStatusNotifierHostRegistered" type="b" access="read"/>
 <property name="ProtocolVersion" type="i" access="read"/>
 <signal name="StatusNotifierItemRegistered"><arg type="s"/></signal>
 <signal name="StatusNotifierItemUnregistered"><arg type="s"/></signal>
 <signal name="StatusNotifierHostRegistered"/>
</interface></node>"""

NOTIFICATIONS = """<node><interface name="org.freedesktop.Notifications">
 <method name="Notify">
  <arg type="s" direction="in"/><arg type="u" direction="in"/><arg type="s" direction="in"/>
  <arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="as" direction="in"/>
  <arg type="a{sv}" direction="in"/><arg type="i" direction="in"/><arg type="u" direction="out"/>
 </method>
 <method name="CloseNotification"><arg type="u" direction="in"/></method>
 <method name="GetCapabilities"><arg type="as" direction="out"/></method>
 <method name="GetServerInformation">
  <arg type="s" direction="out"/><arg type="s" direction="out"/><arg type="s" direction="out"/><arg type="s" direction="out"/>
 </method>
 <signal name="NotificationClosed"><arg type="u"/><arg type="u"/></signal>
 <signal name="ActionInvoked"><arg type="u"/><arg type="s"/></signal>
</interface></node>"""

items = []
shown = [0]
owned = set()


def say(**what):
    print(json.dumps(what), flush=True)


def on_watcher(conn, sender, path, iface, method, params, inv):
    if method == "RegisterStatusNotifierItem":
        arg = params.unpack()[0]
        # A bus name (ksni, KDE's own) or an object path (libappindicator: the sender's).
        bus, obj = (sender, arg) if arg.startswith("/") else (arg, "/StatusNotifierItem")
        if bus + obj not in items:
            items.append(bus + obj)
            conn.signal_subscribe(bus, "org.kde.StatusNotifierItem", "NewToolTip", obj, None, Gio.DBusSignalFlags.NONE, on_tooltip, None)
            conn.emit_signal(None, path, iface, "StatusNotifierItemRegistered", GLib.Variant("(s)", (bus + obj,)))
        say(item={"bus": bus, "path": obj})
    inv.return_value(None)


def on_tooltip(conn, sender, path, _iface, _signal, _params, _data):
    def read(conn, result):
        try:
            tip = conn.call_finish(result).unpack()[0]
        except GLib.Error:
            return  # the icon went away
        say(tooltip=tip[3], at=time.time() * 1000)

    conn.call(sender, path, "org.freedesktop.DBus.Properties", "Get", GLib.Variant("(ss)", ("org.kde.StatusNotifierItem", "ToolTip")),
              GLib.VariantType("(v)"), Gio.DBusCallFlags.NONE, 5000, None, read)


def on_watcher_get(conn, sender, path, iface, prop):
    return {
        "RegisteredStatusNotifierItems": GLib.Variant("as", items),
        "IsStatusNotifierHostRegistered": GLib.Variant("b", True),
        "ProtocolVersion": GLib.Variant("i", 0),
    }[prop]


def on_notifications(conn, sender, path, iface, method, params, inv):
    if method == "Notify":
        app, _replaces, _icon, summary, body, _actions, _hints, _timeout = params.unpack()
        shown[0] += 1
        say(notification={"summary": summary, "body": body, "app": app})
        inv.return_value(GLib.Variant("(u)", (shown[0],)))
    elif method == "GetCapabilities":
        inv.return_value(GLib.Variant("(as)", (["body", "actions"],)))
    elif method == "GetServerInformation":
        inv.return_value(GLib.Variant("(ssss)", ("gatehouse-test", "gatehouse", "1", "1.2")))
    else:
        inv.return_value(None)


def own(name, path, xml, call, get=None):
    def on_bus(conn, _name):
        conn.register_object(path, Gio.DBusNodeInfo.new_for_xml(xml).interfaces[0], call, get, None)

    def on_name(_conn, _name):
        owned.add(name)
        if len(owned) == 2:
            say(ready=True)

    Gio.bus_own_name(Gio.BusType.SESSION, name, Gio.BusNameOwnerFlags.NONE, on_bus, on_name, lambda c, n: sys.exit(f"lost {n}"))


own("org.kde.StatusNotifierWatcher", "/StatusNotifierWatcher", WATCHER, on_watcher, on_watcher_get)
own("org.freedesktop.Notifications", "/org/freedesktop/Notifications", NOTIFICATIONS, on_notifications)
GLib.MainLoop().run()
