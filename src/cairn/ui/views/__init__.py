"""One module per page group. Each view reads through the services on ``app.state``,
renders one template, and names the JSON route its page is built from."""
