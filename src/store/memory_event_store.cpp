// The memory store keeps nothing: the hub's history ring is all there is.
#include "store/memory_event_store.hpp"
