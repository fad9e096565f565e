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

    function show(job) {
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
          var verdict = document.getElementById("verdict-form");
          if (verdict && !verdict.getAttribute("data-stale")) {
            verdict.setAttribute("data-stale", "true");
            var buttons = verdict.querySelectorAll("button");
            for (var b = 0; b < buttons.length; b++) buttons[b].disabled = true;
            var note = document.createElement("p");
            note.className = "notice";
            note.setAttribute("role", "status");
            note.textContent = "A new text replaced the one these buttons would judge: reload the page to review it.";
            verdict.appendChild(note);
          }
        }
      }
      if (job.error && textEl) {
        textEl.textContent = "Error: " + job.error;
        textEl.hidden = false;
      }
    }

    fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ query: SUBSCRIPTION, variables: { id: id } }),
    }).then(function (res) {
      if (!res.ok || !res.body) return;
      var reader = res.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) return;
          buffer += decoder.decode(chunk.value, { stream: true });
          var cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            var block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            if (block.indexOf("event: complete") === 0) return reader.cancel();
            var data = block
              .split("\n")
              .filter(function (l) { return l.indexOf("data:") === 0; })
              .map(function (l) { return l.slice(5).trim(); })
              .join("");
            if (!data) continue;
            var message = JSON.parse(data);
            if (message.data && message.data.jobUpdated) show(message.data.jobUpdated);
          }
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      // The page keeps what it showed; a reload shows the job's state.
    });
  }

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
