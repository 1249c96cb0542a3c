// Click a figure of a chapter to see it at full size; click again or press Escape to close.
// Loaded on every page through html_js_files in _config.yml.
(function () {
  "use strict";

  function naturalWidth(img) {
    // retina PNGs hold twice their display size; show them at their display size x2 at most
    const shown = img.getAttribute("width");
    return shown ? Math.max(parseInt(shown, 10) * 1.6, img.naturalWidth / 2) : img.naturalWidth;
  }

  function open(img) {
    const box = document.createElement("div");
    box.className = "snnlab-lightbox";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-label", "figure at full size (click or press Escape to close)");
    const big = document.createElement("img");
    big.src = img.currentSrc || img.src;
    big.alt = img.alt;
    big.style.width = Math.min(naturalWidth(img), window.innerWidth * 2) + "px";
    box.appendChild(big);
    const close = () => {
      box.remove();
      document.removeEventListener("keydown", onKey);
    };
    const onKey = (event) => {
      if (event.key === "Escape") close();
    };
    box.addEventListener("click", close);
    document.addEventListener("keydown", onKey);
    document.body.appendChild(box);
  }

  function enable() {
    document.querySelectorAll("div.cell_output img").forEach((img) => {
      img.setAttribute("title", "click to enlarge");
      img.addEventListener("click", () => open(img));
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", enable);
  } else {
    enable();
  }
})();
