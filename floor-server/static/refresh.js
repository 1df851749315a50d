// The dashboard reloads itself every 30 seconds while it is visible (the page works without it).
setInterval(function () { if (!document.hidden) { location.reload(); } }, 30000);
