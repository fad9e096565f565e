// Live job progress for the workbench's pages: each element with data-job follows its job through
// the jobUpdated subscription (GraphQL over server-sent events, same origin). Without JavaScript
// the page still shows the progress as of its loading.
"use strict";
(function () {
  var SUBSCRIPTION =
    "subscription Job($id: ID!) { jobUpdated(id: $id) { number status progress progressTotal error description { id text } } }";

  function follow(el) {
    var id = el.getAttribute("data-job");
    var bar = el.querySelector("progress");
    var status = el.querySelector(".job-status");
    var textEl = el.querySelector(".job-text");
    var replacesCurrent = el.getAttribute("data-replaces-current") === "true";
    var lastStatus = status ? status.textContent : "";

    function show(job) {
      // A screen reader hears each change of state (not each token), through the page's announcer.
      if (job.status !== lastStatus) {
        lastStatus = job.status;
        var words = "Job " + job.number + ": " + job.status.toLowerCase();
        if (job.status === "SUCCEEDED" && job.description) {
          words += replacesCurrent ? "; its text is now the current description" : "; its text joins the history";
        }
        if (job.error) words += ": " + job.error;
        announce(words);
      }
      if (bar) {
        if (job.progressTotal) bar.max = job.progressTotal;
        bar.value = job.status === "SUCCEEDED" ? bar.max : job.progress;
        bar.textContent = job.progress + " tokens";
      }
      if (status) status.textContent = job.status;
      el.setAttribute("data-status", job.status);
      if (job.status === "SUCCEEDED" && job.description) {
        if (textEl) {
          textEl.textContent = "New text: " + job.description.text;
          textEl.hidden = false;
        }
        var current = document.getElementById("current-description");
        if (replacesCurrent && current) {
          current.textContent = job.description.text;
          current.classList.remove("none");
          var meta = document.getElementById("current-meta");
          if (meta) meta.textContent = "New · written by the model just now (reload for its history)";
          // The verdict buttons still name the text they were made for: the server would refuse
          // them (a ConflictError); say so here instead of letting a reviewer judge unseen.
          markStale(document.getElementById("verdict-form"), "A new text replaced the one these buttons would judge: reload the page to review it.");
          // The edit box holds the text it was loaded with: saving it would undo the new one.
          markStale(document.getElementById("edit-form"), "A new text replaced the one in this box: reload the page to edit it.");
          // A forced regeneration now means to replace the text shown, the new one.
          var replaces = document.getElementById("regenerate-replaces");
          if (replaces && job.description.id) replaces.value = job.description.id;
        }
      }
      if (job.error && textEl) {
        textEl.textContent = "Error: " + job.error;
        textEl.hidden = false;
      }
    }

    // The stream ends with "event: complete" after the job's final state. Ended any other way (the
    // server restarted, the network dropped), the page says so and subscribes again: the first event
    // of a new stream is the job as it is now.
    var ended = false;
    var retries = 0;
    // The job box's own notice, or the page's (the jobs table): on the page from its loading, empty
    // (a live region a screen reader already knows is announced when its text changes).
    var notice = el.querySelector(".job-connection") || document.getElementById("jobs-connection");

    function say(text) {
      if (notice) notice.textContent = text;
    }

    function lost() {
      if (ended) return;
      if (retries >= MAX_RETRIES) {
        say("Lost the live connection to the server: reload the page to see the job's state.");
        return;
      }
      var wait = Math.min(RETRY_FIRST_MS * Math.pow(2, retries), RETRY_MAX_MS);
      retries++;
      say("Lost the live connection to the server; trying again in " + Math.round(wait / 1000) + " s…");
      setTimeout(subscribe, wait);
    }

    function subscribe() {
      fetch("/graphql", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream" },
        body: JSON.stringify({ query: SUBSCRIPTION, variables: { id: id } }),
      }).then(function (res) {
        if (!res.ok || !res.body) return lost();
        var reader = res.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) return lost();
            buffer += decoder.decode(chunk.value, { stream: true });
            var cut;
            while ((cut = buffer.indexOf("\n\n")) >= 0) {
              var block = buffer.slice(0, cut);
              buffer = buffer.slice(cut + 2);
              if (block.indexOf("event: complete") === 0) {
                ended = true;
                return reader.cancel();
              }
              var data = block
                .split("\n")
                .filter(function (l) { return l.indexOf("data:") === 0; })
                .map(function (l) { return l.slice(5).trim(); })
                .join("");
              if (!data) continue;
              var message = JSON.parse(data);
              if (message.data && message.data.jobUpdated) {
                if (retries) {
                  say("");
                  announce("Job " + id + ": live connection back");
                }
                retries = 0;
                show(message.data.jobUpdated);
              }
            }
            return pump();
          });
        }
        return pump();
      }).catch(lost);
    }

    subscribe();
  }

  /** Disables a form whose text was replaced under it, with a note saying why (once). */
  function markStale(form, text) {
    if (!form || form.getAttribute("data-stale")) return;
    form.setAttribute("data-stale", "true");
    var buttons = form.querySelectorAll("button");
    for (var b = 0; b < buttons.length; b++) buttons[b].disabled = true;
    var note = document.createElement("p");
    note.className = "notice";
    note.setAttribute("role", "status");
    note.textContent = text;
    form.appendChild(note);
    // The job's own announcement (announce) says its text replaced the current one.
  }

  /** Says `text` to screen readers through the page's polite live region (layout.eta). */
  function announce(text) {
    var announcer = document.getElementById("announcer");
    if (announcer) announcer.textContent = text;
  }

  // Reconnecting after a lost stream: 2 s, then twice as long each time up to a minute, 10 times
  // (about 7 minutes: long enough for a restart, short of holding a dead page's connection for ever).
  var RETRY_FIRST_MS = 2000;
  var RETRY_MAX_MS = 60000;
  var MAX_RETRIES = 10;

  // Each followed job holds a connection open until it ends (hours, for a job queued behind a
  // backlog): a browser has 6 per host over HTTP/1.1, and the server allows a client 20 streams.
  // A page follows at most this many; rows marked data-follow="running" (the jobs list) only while
  // they run. A reload shows the state of the others.
  var MAX_FOLLOWED = 3;

  function start() {
    var jobs = document.querySelectorAll("[data-job]");
    var followed = 0;
    for (var i = 0; i < jobs.length && followed < MAX_FOLLOWED; i++) {
      var s = jobs[i].querySelector(".job-status");
      var state = s ? s.textContent : "";
      var runningOnly = jobs[i].getAttribute("data-follow") === "running";
      if (state === "RUNNING" || (state === "QUEUED" && !runningOnly)) {
        follow(jobs[i]);
        followed++;
      }
    }
  }

  // A form is sent once: a double click would send it again, and the second answer (a conflict with
  // the first, which worked) is the one the browser shows.
  document.addEventListener(
    "submit",
    function (e) {
      var form = e.target;
      if (!form || !form.getAttribute || (form.getAttribute("method") || "").toLowerCase() !== "post") return;
      if (form.getAttribute("data-sent")) {
        e.preventDefault();
        return;
      }
      form.setAttribute("data-sent", "true");
    },
    true,
  );
  // Back to a page kept in the browser's cache: its forms may be sent again.
  window.addEventListener("pageshow", function (e) {
    if (!e.persisted) return;
    var sent = document.querySelectorAll("form[data-sent]");
    for (var i = 0; i < sent.length; i++) sent[i].removeAttribute("data-sent");
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
