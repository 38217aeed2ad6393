"use strict";
// Retention at a glance (GET /api/v1/retention/overview, app/retention/overview.py): what
// is due in the next 7 and 30 days, what is overdue and why (kept by a legal hold, a
// deletion that failed with its last error, or awaiting the next run), what the last run
// destroyed, and when it ran and how it ended. A failed deletion is an alert in words
// (role=alert, not colour alone) at the top of the section. Uses api(), $ and short()
// from console.js, when(), untilText() and departmentName() from governance.js and
// failureText() from governance-history.js (all loaded first).

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

async function loadOverview() {
  $("retention-status").textContent = "Loading…";
  let overview;
  try {
    overview = await api("GET", "/retention/overview");
  } catch (error) {
    if (error.status !== 401) $("retention-status").textContent = `Not loaded: ${error.message}.`;
    return;
  }
  showFailures(overview.overdue.failed);
  showFacts(overview);
  showLists(overview);
  $("retention-status").textContent = `As of ${when(overview.now)}.`;
}

// -- a failed deletion: unmissable --------------------------------------------------------

function showFailures(failed) {
  const box = $("retention-failed");
  box.hidden = failed.count === 0;
  // Rewritten only when it changes: an alert is announced again each time it is rewritten.
  const seen = JSON.stringify(failed);
  if (box.dataset.seen === seen) return;
  box.dataset.seen = seen;
  if (failed.count === 0) {
    box.replaceChildren();
    return;
  }
  const title = document.createElement("h3");
  title.textContent = `Deletion failed: ${plural(failed.count, "overdue recording")} could not be destroyed`;
  const what = document.createElement("p");
  what.textContent =
    "The retention run asked the platform and it did not destroy " +
    `${failed.count === 1 ? "it" : "them"}: ${failed.count === 1 ? "it stays" : "they stay"} due and ` +
    "the next run tries again. If it keeps failing, report the error below to the platform.";
  const list = document.createElement("ul");
  list.append(
    ...failed.items.map((item) => {
      const line = document.createElement("li");
      const error = item.last_error;
      line.textContent =
        `Recording ${item.recording_sid} (${departmentName(item.department)}), ${dueText(item)}. ` +
        "Last attempt on " +
        `${when(error.failed_at)}. ${failureText(error)}`;
      return line;
    }),
  );
  box.replaceChildren(title, what, list, ...notListed(failed));
}

// -- the counts, and the last run ---------------------------------------------------------

function factPair(term, value) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = value;
  return [dt, dd];
}

function lastRunText(run) {
  if (!run) return "None recorded yet.";
  const result =
    run.result === "ok"
      ? "finished with no failure"
      : `finished with ${plural(run.failed, "failed deletion")}`;
  return (
    `${when(run.at)}: ${result} (due ${run.due}, kept by a hold ${run.held}, destroyed ` +
    `${run.destroyed}, callers' numbers erased ${run.numbers_erased}).`
  );
}

function showFacts(overview) {
  const { due, overdue, last_run: run } = overview;
  const week = due["7_days"].count;
  const month = due["30_days"].count;
  const why = [
    `${overdue.held.count} kept by a legal hold`,
    `${overdue.failed.count} failed deletion${overdue.failed.count === 1 ? "" : "s"}`,
    `${overdue.awaiting_run.count} awaiting the next run`,
  ];
  $("retention-facts").replaceChildren(
    ...factPair("Due in the next 7 days", plural(week, "recording")),
    ...factPair("Due in the next 30 days", `${plural(month, "recording")}${week ? ` (${week} of them this week)` : ""}`),
    ...factPair("Overdue", overdue.count ? `${plural(overdue.count, "recording")}: ${why.join(", ")}` : "None"),
    ...factPair("Last retention run", lastRunText(run)),
    ...factPair("Destroyed by the last run", run ? plural(run.destroyed, "recording") : "—"),
  );
}

// -- the recordings behind the counts -----------------------------------------------------

// "…and N more": each list holds at most 50 of its count (the API's LIST_LIMIT).
function notListed(bucket) {
  if (bucket.count <= bucket.items.length) return [];
  const note = document.createElement("p");
  note.textContent = `…and ${bucket.count - bucket.items.length} more, not listed here.`;
  return [note];
}

function bucketList(title, bucket, line, open) {
  const details = document.createElement("details");
  details.dataset.list = title;
  details.open = open.has(title); // a list left open stays open when the overview reloads
  const summary = document.createElement("summary");
  summary.textContent = `${title} (${bucket.count})`;
  const list = document.createElement("ul");
  list.append(
    ...bucket.items.map((item) => {
      const entry = document.createElement("li");
      entry.textContent = line(item);
      return entry;
    }),
  );
  details.append(summary, list, ...notListed(bucket));
  return details;
}

const dueText = (item) => `due ${when(item.destroy_after)} (${untilText(item.destroy_after)})`;
const named = (item) => `Recording ${short(item.recording_sid)} (${departmentName(item.department)})`;

function showLists(overview) {
  const { due, overdue, last_run: run } = overview;
  const open = new Set([...$("retention-lists").querySelectorAll("details[open]")].map((d) => d.dataset.list));
  const lists = [];
  if (overdue.held.count) {
    lists.push(
      bucketList("Overdue, kept by a legal hold", overdue.held, (item) =>
        `${named(item)}, ${dueText(item)}: kept for case ${item.case_references.join(", case ")}.`,
        open,
      ),
    );
  }
  if (overdue.awaiting_run.count) {
    lists.push(
      bucketList("Overdue, awaiting the next run", overdue.awaiting_run, (item) =>
        `${named(item)}, ${dueText(item)}: not held; the next retention run destroys it.`,
        open,
      ),
    );
  }
  if (due["30_days"].count) {
    lists.push(
      bucketList("Due in the next 30 days", due["30_days"], (item) =>
        `${named(item)}: destroyed after ${when(item.destroy_after)} (${untilText(item.destroy_after)}).`,
        open,
      ),
    );
  }
  if (run && run.destroyed_items.length) {
    const bucket = { count: run.destroyed, items: run.destroyed_items };
    lists.push(
      bucketList("Destroyed by the last run", bucket, (item) =>
        `Recording ${short(item.recording_sid)}: destroyed on ${when(item.destroyed_at)}.`,
        open,
      ),
    );
  }
  $("retention-lists").replaceChildren(...lists);
}

$("retention-refresh").addEventListener("click", loadOverview);
