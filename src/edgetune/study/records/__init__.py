"""What a study holds, read back: trials and outcomes (results), the final stage's records
(held), the sentence that says what to deploy (headline), and one trial exported (trial_export).
Reports, the progress table and `edgetune export` read a study through here."""
