"""The print queue: jobs, matching printers to jobs, and the dispatcher that starts them."""
