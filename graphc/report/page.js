// graphc's compile report: highlight a node everywhere it appears, open a kernel from
// its cluster. Plain DOM, no network, no libraries.
(function () {
  "use strict";
  var lit = [];
  function clear() {
    lit.forEach(function (el) { el.classList.remove("hl"); });
    lit = [];
  }
  function light(ids) {
    clear();
    ids.forEach(function (id) {
      if (!id) return;
      document.querySelectorAll('[data-node~="' + id + '"]').forEach(function (el) {
        el.classList.add("hl");
        lit.push(el);
      });
    });
  }
  document.addEventListener("click", function (ev) {
    var line = ev.target.closest(".linked, .node");
    if (line) {
      var ids = (line.getAttribute("data-node") || "").split(" ").filter(Boolean);
      light(ids);
      var first = document.querySelector('#graph .node[data-node~="' + ids[0] + '"]');
      if (first && !line.closest("svg")) first.scrollIntoView({block: "nearest", inline: "nearest"});
      ev.stopPropagation();
      return;
    }
    var cluster = ev.target.closest(".cluster");
    if (cluster) {
      var kernel = document.getElementById("kernel-" + cluster.getAttribute("data-group"));
      if (kernel) {
        kernel.open = true;
        kernel.scrollIntoView({block: "start"});
      }
    }
  });
  document.documentElement.setAttribute("data-ready", "1");
})();
