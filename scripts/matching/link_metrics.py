#!/usr/bin/env python3
# The scorer this project's matching is judged with, kept in the repository so the
# stream evaluation runs from a clone alone (copied unchanged below this comment
# from the workspace's shared matching tools).
"""Score `iisbulk matching link` output against ground truth.
Usage: link_metrics.py TRUTH.json LINK_OUTPUT.jsonl
TRUTH.json: {"record id": {"entity": "...", "twin_group": "... or null"}}
Prints pairwise precision/recall/F1 over the clusters (person ids), false merges between members of the same
twin_group (multiple births / same-household same-DOB), and the share of records graded possible (review rate)."""
import json, sys, collections, itertools

truth = json.load(open(sys.argv[1]))
person, grade = {}, {}
for line in open(sys.argv[2]):
    line = line.strip()
    if not line.startswith("{"): continue
    r = json.loads(line); person[r["id"]] = str(r.get("person")); grade[r["id"]] = r.get("grade")
missing = [i for i in truth if i not in person]
def pairs(groups):
    s = set()
    for members in groups.values():
        for a, b in itertools.combinations(sorted(members), 2): s.add((a, b))
    return s
by_entity, by_person = collections.defaultdict(list), collections.defaultdict(list)
for i, t in truth.items():
    by_entity[t["entity"]].append(i)
    if i in person: by_person[person[i]].append(i)
T, P = pairs(by_entity), pairs(by_person)
tp = len(T & P); prec = tp / len(P) if P else 1.0; rec = tp / len(T) if T else 1.0
f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
twin_merges = sum(1 for a, b in P - T if truth[a].get("twin_group") and truth[a].get("twin_group") == truth[b].get("twin_group"))
review = sum(1 for g in grade.values() if g == "possible") / max(1, len(grade))
print(json.dumps({"records": len(truth), "missing": len(missing), "true_pairs": len(T), "predicted_pairs": len(P),
                  "precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4),
                  "twin_false_merges": twin_merges, "review_rate": round(review, 4)}))
