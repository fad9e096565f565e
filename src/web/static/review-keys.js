// Keys of the review queue (/review): a approves, r rejects, e moves to the text's edit box, j and
// k go to the next and previous description. They submit the page's own forms and follow its own
// links, so they do exactly what the buttons and links do; without JavaScript those still work.
"use strict";
(function () {
  function typing(el) {
    if (!el || el === document.body) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }

  function submitVerdict(buttonId) {
    var button = document.getElementById(buttonId);
    if (!button || !button.form) return false;
    if (typeof button.form.requestSubmit === "function") button.form.requestSubmit(button);
    else button.click();
    return true;
  }

  function follow(rel) {
    var link = document.querySelector('#queue-paging a[rel="' + rel + '"]');
    if (!link) return false;
    window.location.assign(link.href);
    return true;
  }

  // Single-character shortcuts can be turned off (WCAG 2.1.4): a speech-input or screen-reader
  // user's keystrokes must not approve anything by accident. The choice is kept in this browser.
  var STORE = "artdesc.reviewKeys";
  var enabled = true;
  try {
    enabled = window.localStorage.getItem(STORE) !== "off";
  } catch (e) {
    // Storage blocked: the keys stay on for this page.
  }

  function showKeys() {
    var line = document.getElementById("review-keys");
    if (!line) return;
    line.hidden = false;
    var box = document.createElement("input");
    box.type = "checkbox";
    box.id = "review-keys-on";
    box.checked = enabled;
    var label = document.createElement("label");
    label.htmlFor = box.id;
    label.textContent = "Use these keys";
    box.addEventListener("change", function () {
      enabled = box.checked;
      try {
        window.localStorage.setItem(STORE, enabled ? "on" : "off");
      } catch (e) {
        // Not kept; applies to this page.
      }
    });
    var wrap = document.createElement("span");
    wrap.className = "keys-toggle";
    wrap.appendChild(box);
    wrap.appendChild(label);
    line.appendChild(wrap);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", showKeys);
  else showKeys();

  var busy = false;
  // A page restored by the Back button starts listening again.
  window.addEventListener("pageshow", function () {
    busy = false;
  });
  document.addEventListener("keydown", function (event) {
    if (!enabled || busy || event.defaultPrevented || event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target) || typing(document.activeElement)) return;
    var done = false;
    switch (event.key) {
      case "a":
        done = submitVerdict("verdict-approve");
        break;
      case "r":
        done = submitVerdict("verdict-reject");
        break;
      case "e": {
        var text = document.getElementById("edit-text");
        if (text) {
          text.focus();
          done = true;
        }
        break;
      }
      case "j":
        done = follow("next");
        break;
      case "k":
        done = follow("prev");
        break;
    }
    if (done) {
      event.preventDefault();
      // One key, one action: a second press while the page changes would act on the old item.
      if (event.key !== "e") busy = true;
    }
  });
})();
