// Times as a person reads them in a list: "14:05" today, "Mon" this week, else a date.

export function when(rfc3339: string, now: Date = new Date()): string {
  const t = new Date(rfc3339);
  if (Number.isNaN(t.getTime())) return "";
  const sameDay = t.toDateString() === now.toDateString();
  if (sameDay) return t.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  const days = (now.getTime() - t.getTime()) / 86_400_000;
  if (days < 6) return t.toLocaleDateString(undefined, { weekday: "short" });
  return t.toLocaleDateString(undefined, { day: "numeric", month: "short", year: t.getFullYear() === now.getFullYear() ? undefined : "numeric" });
}
