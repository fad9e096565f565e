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

  var busy = false;
  // A page restored by the Back button starts listening again.
  window.addEventListener("pageshow", function () {
    busy = false;
  });
  document.addEventListener("keydown", function (event) {
    if (busy || event.defaultPrevented || event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
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
