// trentd console: small progressive enhancements. Every page works without this file.
"use strict";

// Ask before destructive actions: <button data-confirm="…">.
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  var text = button && button.getAttribute("data-confirm");
  if (text && !window.confirm(text)) {
    event.preventDefault();
  }
});

// Create key: offer only the usages the chosen key spec allows (crypto/specs.py, via data-usages).
document.addEventListener("DOMContentLoaded", function () {
  var spec = document.getElementById("key_spec");
  var usage = document.getElementById("key_usage");
  if (!spec || !usage) {
    return;
  }
  function limitUsages() {
    var chosen = spec.options[spec.selectedIndex];
    var allowed = (chosen.getAttribute("data-usages") || "").split(" ");
    var firstAllowed = null;
    for (var i = 0; i < usage.options.length; i++) {
      var option = usage.options[i];
      var ok = allowed.indexOf(option.value) >= 0;
      option.disabled = !ok;
      option.hidden = !ok;
      if (ok && firstAllowed === null) {
        firstAllowed = option;
      }
    }
    if (usage.options[usage.selectedIndex].disabled && firstAllowed) {
      firstAllowed.selected = true;
    }
  }
  spec.addEventListener("change", limitUsages);
  limitUsages();
});
