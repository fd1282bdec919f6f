"""What the routes ask of the product, shared by the office pages and ``/api/v1`` (which
never import each other): Send Secure and Reply All, the office's changes, and the reads
and changes both answer (staff, tokens, patients, chart, alerts, audit filters, the Sent
box), each with its audit."""
