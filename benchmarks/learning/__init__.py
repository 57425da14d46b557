"""Learning over seeds: the acceptance table, Coop, the recurrent agents (hours each; resumable)."""
