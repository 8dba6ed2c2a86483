// The message builder, enhanced. Every button here also works without this script: it submits
// the form with an `action` and the server re-renders. With the script the same steps happen
// in place: Invite to book opens a modal dialog, Add link puts {{Appointment Link}} at the
// cursor, and the link summary and counts refresh through htmx.
(function () {
  "use strict";

  var TOKEN = "{{Appointment Link}}";
  var TOKEN_PATTERN = /(\{\{|<<)\s*appointment\s+link\s*(\}\}|>>)/gi;

  function init() {
    var form = document.querySelector("[data-compose]");
    if (!form) return;
    var dialog = document.getElementById("invite-dialog");
    var body = document.getElementById("id_body");
    var linkAdded = form.querySelector("[data-link-added]");
    var cursor = null;

    function rememberCursor() {
      cursor = { start: body.selectionStart, end: body.selectionEnd };
    }
    body.addEventListener("keyup", rememberCursor);
    body.addEventListener("click", rememberCursor);
    body.addEventListener("blur", rememberCursor);

    function refreshCount() {
      body.dispatchEvent(new Event("input", { bubbles: true }));
    }

    function refreshSummary() {
      if (!window.htmx) return;
      window.htmx.ajax("GET", dialog.querySelector("#link-fields").getAttribute("hx-get") + "?part=summary&link_added=" + encodeURIComponent(linkAdded.value), {
        target: "#link-summary",
        source: dialog.querySelector("#link-fields"),
        values: { link_added: linkAdded.value },
      });
    }

    function openDialog() {
      rememberCursor();
      if (!dialog.open) dialog.showModal();
      var first = dialog.querySelector("select");
      if (first) first.focus();
    }

    // The server renders the section open (no-JS) when it has errors to show; make it modal.
    if (dialog.hasAttribute("open")) {
      dialog.close();
      openDialog();
    }

    form.addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button || !form.contains(button)) return;

      if (button.hasAttribute("data-open-invite")) {
        event.preventDefault();
        openDialog();
      } else if (button.hasAttribute("data-close-invite")) {
        event.preventDefault();
        dialog.close();
        body.focus();
      } else if (button.hasAttribute("data-add-link")) {
        var type = form.elements["appointment_type"].value;
        var location = form.elements["location"].value;
        if (!type || !location) return; // let the server say what is missing
        event.preventDefault();
        if (!TOKEN_PATTERN.test(body.value)) {
          var at = cursor || { start: body.value.length, end: body.value.length };
          var before = body.value.slice(0, at.start);
          var after = body.value.slice(at.end);
          var spaceBefore = before && !/\s$/.test(before) ? " " : "";
          var spaceAfter = after && !/^\s/.test(after) ? " " : "";
          body.value = before + spaceBefore + TOKEN + spaceAfter + after;
          var caret = (before + spaceBefore + TOKEN).length;
          body.setSelectionRange(caret, caret);
        }
        TOKEN_PATTERN.lastIndex = 0;
        linkAdded.value = "True";
        dialog.close();
        refreshSummary();
        refreshCount();
        body.focus();
      } else if (button.hasAttribute("data-remove-link")) {
        event.preventDefault();
        body.value = body.value.replace(TOKEN_PATTERN, "").replace(/[ \t]{2,}/g, " ").trim();
        ["appointment_type", "location", "practitioner"].forEach(function (name) {
          form.elements[name].value = "";
        });
        linkAdded.value = "";
        document.getElementById("link-summary").innerHTML = "";
        refreshCount();
        body.focus();
      } else if (button.hasAttribute("data-use-template")) {
        var chosen = form.elements["template"].value;
        var source = document.getElementById("template-bodies");
        var node = chosen && source && source.content.querySelector('[data-template-id="' + chosen + '"]');
        if (!node) return;
        event.preventDefault();
        body.value = node.textContent;
        refreshCount();
        body.focus();
      } else if (button.hasAttribute("data-send")) {
        // One click, one message: the server also refuses a second send of the same form.
        if (form.dataset.sending) {
          event.preventDefault();
          return;
        }
        form.dataset.sending = "true";
        button.setAttribute("aria-disabled", "true");
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
