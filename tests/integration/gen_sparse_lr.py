#!/usr/bin/env python3
"""Synthetic libsvm data for sparse logistic regression, standard library only.

A planted weight vector over FEATURES ids (a fraction nonzero, N(0, scale))
plus a bias; each row draws NNZ distinct feature ids (uniformly, or skewed
towards small ids with --skew) with value 1
and its label from Bernoulli(sigmoid(w.x + b)). Writes TRAIN and TEST files
(1-based libsvm, labels 0/1) and prints the planted model's AUC on the test
set (exact, ties averaged) as the last line: "planted_auc X".

Usage: gen_sparse_lr.py TRAIN TEST [--features N] [--train-rows N]
       [--test-rows N] [--nnz K] [--density P] [--scale S] [--skew X]
       [--seed S]
"""
import argparse
import math
import random


def auc(scores, labels):
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    pos = sum(labels)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    rank_sum = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        avg = (i + j) / 2.0 + 1.0
        rank_sum += avg * sum(labels[order[k]] for k in range(i, j + 1))
        i = j + 1
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)


def draw_ids(rng, nfeat, nnz, skew):
    """nnz distinct ids; skew > 1 favours small ids (a head of frequent
    features and a long tail, like real hashed data)."""
    if skew == 1.0:
        return sorted(rng.sample(range(nfeat), nnz))
    ids = set()
    while len(ids) < nnz:
        ids.add(int(nfeat * rng.random() ** skew))
    return sorted(ids)


def write(path, rows, nfeat, nnz, skew, w, bias, rng):
    scores, labels = [], []
    with open(path, "w") as f:
        for _ in range(rows):
            ids = draw_ids(rng, nfeat, nnz, skew)
            z = bias + sum(w.get(i, 0.0) for i in ids)
            y = 1 if rng.random() < 1.0 / (1.0 + math.exp(-z)) else 0
            f.write("%d %s\n" % (y, " ".join("%d:1" % (i + 1) for i in ids)))
            scores.append(z)
            labels.append(y)
    return scores, labels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("test")
    ap.add_argument("--features", type=int, default=10000)
    ap.add_argument("--train-rows", type=int, default=20000)
    ap.add_argument("--test-rows", type=int, default=5000)
    ap.add_argument("--nnz", type=int, default=30)
    ap.add_argument("--density", type=float, default=0.2)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--skew", type=float, default=1.0,
                    help="id = features * U^skew (1: uniform)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    w = {}
    for i in range(a.features):
        if rng.random() < a.density:
            w[i] = rng.gauss(0.0, a.scale)
    bias = -0.5
    write(a.train, a.train_rows, a.features, a.nnz, a.skew, w, bias, rng)
    scores, labels = write(a.test, a.test_rows, a.features, a.nnz, a.skew, w,
                           bias, rng)
    print("planted_auc %.6f" % auc(scores, labels))


if __name__ == "__main__":
    main()
