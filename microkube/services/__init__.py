"""Node daemons: one small type per daemon, and the supervisor that runs them."""
