"""One trial: the workbench it is built on, the target profile measured once before any, the
candidate compressed, recovered, fine-tuned and measured (candidate, finetune, clock, reject,
rungs), the evaluator that turns it into Optuna's trial, and a candidate measured again."""
