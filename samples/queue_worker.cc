// Sample: a queue worker. Takes items from a distributed queue (each item goes to exactly one of
// any number of workers), waiting on a watch while the queue is empty.
//   queue_worker <queue name> <items to process> [endpoint]
#include <cstdlib>
#include <iostream>

#include "cairn/client.h"
#include "cairn/recipes/queue.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: queue_worker <queue name> <items to process> [endpoint]\n";
    return 2;
  }
  int items = std::atoi(argv[2]);
  cairn::ClientOptions options;
  options.endpoints.push_back(argc > 3 ? argv[3] : "127.0.0.1:2379");
  auto client = cairn::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << "\n";
    return 1;
  }
  cairn::recipes::Queue queue(**client, argv[1]);
  for (int i = 0; i < items; ++i) {
    cairn::CallOptions wait;
    wait.timeout = std::chrono::seconds(30);
    auto item = queue.Dequeue(wait);
    if (!item.ok()) {
      std::cerr << "dequeue: " << item.status() << "\n";
      return 1;
    }
    // Process the item. A worker that fails here should Enqueue it again: taking it removed it.
    std::cout << "processed " << item->value << " (priority " << item->priority << ")\n";
  }
  return 0;
}
