// The message builder, enhanced. Every button here also works without this script: it submits
// the form with an `action` and the server re-renders. With the script the same steps happen
// in place: Invite to book opens a modal dialog, Add link puts {{Appointment Link}} at the
// cursor, and the link summary and counts refresh through htmx.
//
// Add link, Remove link and the count are messaging/tokens.py's link_token_add,
// link_token_remove and link_token_count, written again here to match them line for line, so
// the builder reads a message the way the sender will. tests/messaging/link_token_cases.json
// is the one table both are tested against, through window.MessageBuilder.
(function () {
  "use strict";

  var TOKEN = "{{Appointment Link}}";
  // _TOKEN_LIKE. The u flag makes {1,40} count characters, as Python does, not UTF-16 units.
  var TOKEN_LIKE = "\\{\\{([^{}<>\\r\\n]{1,40})\\}\\}|<<([^{}<>\\r\\n]{1,40})>>";
  // _HORIZONTAL_SPACES and _WHITESPACE: Unicode's White_Space without and with the line breaks,
  // listed because JavaScript's \s (which adds U+FEFF) is not Python's.
  var HORIZONTAL_SPACES =
    "\t \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000";
  var WHITESPACE = HORIZONTAL_SPACES + "\n\u000b\f\r\u0085\u2028\u2029";
  var SPACES = new RegExp("[" + HORIZONTAL_SPACES + "]+", "gu");
  var ASCII = /^[\u0000-\u007f]*$/u;

  // _canonical, for the link: case and spaces forgiven, ASCII only (the Kelvin sign lower-cases
  // to "k" but is not a token).
  function isLinkToken(match) {
    var inside = match[1] !== undefined ? match[1] : match[2];
    var letters = inside.replace(SPACES, "");
    return ASCII.test(letters) && letters.toLowerCase() === "appointmentlink";
  }

  function linkTokens(body) {
    var pattern = new RegExp(TOKEN_LIKE, "gu");
    var found = [];
    var match;
    while ((match = pattern.exec(body)) !== null) {
      if (isLinkToken(match)) found.push(match);
    }
    return found;
  }

  function isWhitespace(character) {
    return character !== "" && WHITESPACE.indexOf(character) !== -1;
  }

  // str.lstrip / str.rstrip with a set of characters.
  function trimStart(text, characters) {
    var start = 0;
    while (start < text.length && characters.indexOf(text.charAt(start)) !== -1) start++;
    return text.slice(start);
  }

  function trimEnd(text, characters) {
    var end = text.length;
    while (end > 0 && characters.indexOf(text.charAt(end - 1)) !== -1) end--;
    return text.slice(0, end);
  }

  function linkTokenCount(body) {
    return linkTokens(body).length;
  }

  // `at` is the cursor in UTF-16 units, as a textarea counts; null or undefined for the end.
  function linkTokenAdd(body, at) {
    if (linkTokenCount(body)) return body;
    at = at === null || at === undefined ? body.length : Math.min(Math.max(at, 0), body.length);
    var before = body.slice(0, at);
    var after = body.slice(at);
    var spaceBefore = before && !isWhitespace(before.slice(-1)) ? " " : "";
    var spaceAfter = after && !isWhitespace(after.charAt(0)) ? " " : "";
    return before + spaceBefore + TOKEN + spaceAfter + after;
  }

  function linkTokenRemove(body) {
    var tokens;
    while ((tokens = linkTokens(body)).length) {
      var before = body.slice(0, tokens[0].index);
      var after = body.slice(tokens[0].index + tokens[0][0].length);
      var keptBefore = trimEnd(before, HORIZONTAL_SPACES);
      var keptAfter = trimStart(after, HORIZONTAL_SPACES);
      var betweenWords =
        (keptBefore !== before || keptAfter !== after) &&
        keptBefore !== "" &&
        keptAfter !== "" &&
        !isWhitespace(keptBefore.slice(-1)) &&
        !isWhitespace(keptAfter.charAt(0));
      body = keptBefore + (betweenWords ? " " : "") + keptAfter;
    }
    return trimEnd(trimStart(body, WHITESPACE), WHITESPACE);
  }

  window.MessageBuilder = {
    linkTokenAdd: linkTokenAdd,
    linkTokenRemove: linkTokenRemove,
    linkTokenCount: linkTokenCount,
  };

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
        // After a selection, not over it: Add link never deletes what staff wrote. The cursor
        // may be from before Remove link or Use template shortened the text.
        var at = Math.min(cursor ? cursor.end : body.value.length, body.value.length);
        var added = linkTokenAdd(body.value, at);
        if (added !== body.value) {
          body.value = added;
          var caret = added.indexOf(TOKEN, at) + TOKEN.length;
          body.setSelectionRange(caret, caret);
        }
        linkAdded.value = "True";
        dialog.close();
        refreshSummary();
        refreshCount();
        body.focus();
      } else if (button.hasAttribute("data-remove-link")) {
        event.preventDefault();
        body.value = linkTokenRemove(body.value);
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
