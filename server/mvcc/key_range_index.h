// KeyRangeIndex<T>: which registered key ranges contain a given key, in about O(log n + matches).
//
// A range is etcd's (key, range_end): range_end empty = the single key `key`; range_end "\0" =
// every key >= key; otherwise [key, range_end) (empty when range_end <= key). Single keys live in
// a hash map. Every other range lives in a treap ordered by (start, item), each node also knowing
// the largest end in its subtree, so a stabbing query skips every subtree whose ranges all end at
// or before the key and every right subtree whose ranges all start after it.
//
// Items are not owned; an item is registered under at most one range at a time (Remove must be
// given the same range it was added with). Thread contract: none (the owner locks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

namespace cairn::mvcc {

template <typename T>
class KeyRangeIndex {
 public:
  KeyRangeIndex() = default;
  KeyRangeIndex(const KeyRangeIndex&) = delete;
  KeyRangeIndex& operator=(const KeyRangeIndex&) = delete;
  ~KeyRangeIndex() { Free(root_); }

  void Add(const std::string& key, const std::string& range_end, T* item) {
    ++size_;
    if (range_end.empty()) {
      keys_[key].push_back(item);
      return;
    }
    Node* n = new Node{key, range_end, IsFromKey(range_end), item, NextPriority()};
    n->max = n;
    root_ = Insert(root_, n);
  }

  // Returns false when `item` is not registered under this range.
  bool Remove(const std::string& key, const std::string& range_end, T* item) {
    bool found = false;
    if (range_end.empty()) {
      auto it = keys_.find(key);
      if (it == keys_.end()) return false;
      std::vector<T*>& v = it->second;
      for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] != item) continue;
        v[i] = v.back();
        v.pop_back();
        found = true;
        break;
      }
      if (v.empty()) keys_.erase(it);
    } else {
      root_ = Erase(root_, key, item, &found);
    }
    if (found) --size_;
    return found;
  }

  // Calls fn(T*) once for each item whose range contains `key`.
  template <typename Fn>
  void ForEachContaining(const std::string& key, Fn&& fn) const {
    if (auto it = keys_.find(key); it != keys_.end()) {
      for (T* item : it->second) fn(item);
    }
    Stab(root_, key, fn);
  }

  // Calls fn(T*) for every item.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& [k, items] : keys_) {
      for (T* item : items) fn(item);
    }
    Walk(root_, fn);
  }

  size_t size() const { return size_; }

 private:
  struct Node {
    std::string start;
    std::string end;
    bool open_end;  // range_end "\0": no upper bound
    T* item;
    uint64_t priority;
    const Node* max = nullptr;  // the node of the subtree with the largest end
    Node* left = nullptr;
    Node* right = nullptr;
  };

  static bool IsFromKey(const std::string& end) { return end.size() == 1 && end[0] == '\0'; }
  // True when the range of `n` ends after `key` (so it may contain it).
  static bool EndsAfter(const Node* n, const std::string& key) {
    return n->open_end || key < n->end;
  }
  static bool EndLess(const Node* a, const Node* b) {
    if (a->open_end) return false;
    return b->open_end || a->end < b->end;
  }
  // The treap's order: (start, item).
  static bool Less(const std::string& s1, const T* i1, const std::string& s2, const T* i2) {
    int c = s1.compare(s2);
    if (c != 0) return c < 0;
    return std::less<const T*>()(i1, i2);
  }
  static bool Before(const std::string& start, const T* item, const Node* n) {
    return Less(start, item, n->start, n->item);
  }

  static void Update(Node* n) {
    n->max = n;
    if (n->left && EndLess(n->max, n->left->max)) n->max = n->left->max;
    if (n->right && EndLess(n->max, n->right->max)) n->max = n->right->max;
  }

  // Splits `t` into the nodes before (start, item) and the rest.
  static void Split(Node* t, const std::string& start, const T* item, Node** l, Node** r) {
    if (!t) {
      *l = *r = nullptr;
    } else if (Less(t->start, t->item, start, item)) {
      Split(t->right, start, item, &t->right, r);
      *l = t;
      Update(t);
    } else {
      Split(t->left, start, item, l, &t->left);
      *r = t;
      Update(t);
    }
  }
  static Node* Merge(Node* l, Node* r) {
    if (!l) return r;
    if (!r) return l;
    if (l->priority > r->priority) {
      l->right = Merge(l->right, r);
      Update(l);
      return l;
    }
    r->left = Merge(l, r->left);
    Update(r);
    return r;
  }

  static Node* Insert(Node* t, Node* n) {
    if (!t) return n;
    if (n->priority > t->priority) {
      Split(t, n->start, n->item, &n->left, &n->right);
      Update(n);
      return n;
    }
    if (Before(n->start, n->item, t)) {
      t->left = Insert(t->left, n);
    } else {
      t->right = Insert(t->right, n);
    }
    Update(t);
    return t;
  }

  static Node* Erase(Node* t, const std::string& start, const T* item, bool* found) {
    if (!t) return nullptr;
    if (t->item == item && t->start == start) {
      *found = true;
      Node* rest = Merge(t->left, t->right);
      delete t;
      return rest;
    }
    if (Before(start, item, t)) {
      t->left = Erase(t->left, start, item, found);
    } else {
      t->right = Erase(t->right, start, item, found);
    }
    Update(t);
    return t;
  }

  template <typename Fn>
  static void Stab(const Node* n, const std::string& key, Fn& fn) {
    while (n && EndsAfter(n->max, key)) {
      Stab(n->left, key, fn);
      if (key < n->start) return;  // this node and its right subtree start after the key
      if (EndsAfter(n, key)) fn(n->item);
      n = n->right;
    }
  }

  template <typename Fn>
  static void Walk(const Node* n, Fn& fn) {
    for (; n; n = n->right) {
      Walk(n->left, fn);
      fn(n->item);
    }
  }

  static void Free(Node* n) {
    while (n) {
      Free(n->left);
      Node* right = n->right;
      delete n;
      n = right;
    }
  }

  uint64_t NextPriority() {  // xorshift64: a deterministic treap shape for a given history
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return rng_;
  }

  std::unordered_map<std::string, std::vector<T*>> keys_;
  Node* root_ = nullptr;
  size_t size_ = 0;
  uint64_t rng_ = 0x9E3779B97F4A7C15ull;
};

}  // namespace cairn::mvcc
