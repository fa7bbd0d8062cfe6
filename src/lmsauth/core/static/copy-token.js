// The Copy button of a new access token: shown only when scripts run (the token stays
// selectable without them), and allowed by the pages' CSP (script-src 'self').
document.querySelectorAll("button[data-copy]").forEach((button) => {
  const status = document.getElementById("copy-status");
  button.hidden = false;
  button.addEventListener("click", async () => {
    const text = document.getElementById(button.dataset.copy).textContent.trim();
    try {
      await navigator.clipboard.writeText(text);
      if (status) status.textContent = "Copied.";
    } catch (error) {
      if (status) status.textContent = "Copying failed: select the token and copy it.";
    }
  });
});
