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
      var graph = cluster.closest("svg");
      if (graph && graph.getAttribute("data-collapsed") === "1") {
        expand(cluster);
      } else {
        openKernel(cluster.getAttribute("data-group"));
      }
      return;
    }
    var link = ev.target.closest("[data-open-kernel]");
    if (link) {
      openKernel(link.getAttribute("data-open-kernel"));
      ev.preventDefault();
    }
  });
  function openKernel(group) {
    var kernel = document.getElementById("kernel-" + group);
    if (kernel) {
      kernel.open = true;
      kernel.scrollIntoView({block: "start"});
    }
  }
  // a collapsed group (a large graph's box) expands in place: its drawing from the
  // kernel's section, over the box; a second click closes it
  function expand(cluster) {
    var group = cluster.getAttribute("data-group");
    var wrap = cluster.closest(".graph-wrap");
    var open = wrap.querySelector('.popover[data-group="' + group + '"]');
    wrap.querySelectorAll(".popover").forEach(function (el) { el.remove(); });
    if (open) return;
    var drawing = document.querySelector("#kernel-" + group + " .group-graph");
    var box = cluster.querySelector(".cluster-box");
    var pop = document.createElement("div");
    pop.className = "popover";
    pop.setAttribute("data-group", group);
    pop.style.left = box.getAttribute("x") + "px";
    pop.style.top = (parseFloat(box.getAttribute("y")) + parseFloat(box.getAttribute("height"))) + "px";
    var head = document.createElement("div");
    head.className = "popover-head";
    head.textContent = cluster.querySelector(".cluster-label").textContent + " ";
    var a = document.createElement("a");
    a.href = "#kernel-" + group;
    a.textContent = "its kernel";
    a.setAttribute("data-open-kernel", group);
    head.appendChild(a);
    pop.appendChild(head);
    if (drawing) pop.appendChild(drawing.cloneNode(true));
    pop.addEventListener("click", function (e) {
      if (e.target.closest(".popover-head") && !e.target.closest("a")) pop.remove();
    });
    wrap.appendChild(pop);
  }
  document.documentElement.setAttribute("data-ready", "1");
})();
