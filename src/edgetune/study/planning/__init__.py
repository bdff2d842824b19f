"""Before any trial: the experiment turned into a plan (the schedule, the sweep, objectives and
constraints, references, teachers), its resolved record, and the names references go by."""
