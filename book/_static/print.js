/* neudep, print (make pdf): the title page comes first, before the theme's printed contents
   (whose own title would repeat it). Both are shown only in print. */
document.addEventListener("DOMContentLoaded", function () {
  var title = document.querySelector(".title-page");
  var toc = document.getElementById("jb-print-docs-body");
  if (!title || !toc) return;
  toc.parentNode.insertBefore(title, toc);
  var h = toc.querySelector("h1");
  if (h) h.remove();
});
