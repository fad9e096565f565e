import { createTask, validate } from "node-cron";

/**
 * SYNC_CRON and SYNC_TIMEZONE: node-cron's own syntax (five fields, or six with seconds first) and
 * an IANA time zone. config.ts checks both with these functions, so a bad schedule stops every
 * command before anything listens, and nothing later (the schedule, GraphQL's nextSyncAt) can
 * meet one.
 */

/** What is wrong with a cron expression, or null when node-cron accepts it and it fires at all. */
export function cronProblem(cron: string): string | null {
  if (!validate(cron)) return 'is not a cron expression node-cron accepts (e.g. "0 3 * * *": minute hour day month weekday, optionally seconds first)';
  try {
    nextCronMatch(cron, "UTC");
  } catch (err) {
    return `never fires: ${err instanceof Error ? err.message : String(err)}`;
  }
  return null;
}

/** What is wrong with a time zone name, or null when Intl knows it. */
export function timeZoneProblem(timezone: string): string | null {
  try {
    new Intl.DateTimeFormat("en", { timeZone: timezone });
    return null;
  } catch {
    return 'is not an IANA time zone (e.g. "UTC" or "Europe/Madrid")';
  }
}

/** When `cron` next fires in `timezone` after `now`. Throws when node-cron finds no such time. */
export function nextCronMatch(cron: string, timezone: string, now: Date = new Date()): Date {
  const task = createTask(cron, () => undefined, { timezone });
  try {
    // node-cron exposes the next match only from the current time; its matcher takes any date.
    const matcher = (task as unknown as { timeMatcher?: { getNextMatch(d: Date): Date } }).timeMatcher;
    if (!matcher) throw new Error("node-cron changed: no timeMatcher on a task");
    return matcher.getNextMatch(now);
  } finally {
    void task.destroy();
  }
}
