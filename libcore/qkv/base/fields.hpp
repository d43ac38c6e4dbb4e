// fields: a struct's members named, as one table per struct, so that a file's attributes (the
// model's config, the trainer's settings) are written, read and printed by walking the table.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qkv {

template <class S> struct Field {
    const char* name;
    int64_t S::*integer = nullptr; // exactly one of the three is set
    double S::*real = nullptr;
    std::string S::*text = nullptr;
    bool optional = false; // may be absent from a file (the struct's default then holds)
};

// Calls visit(field, member) for every field of obj, member an int64_t, double or std::string
// reference (const when obj is).
template <class S, class Obj, class Visit>
void visit_fields(const std::vector<Field<S>>& fields, Obj& obj, Visit visit) {
    for (const Field<S>& f : fields) {
        if (f.integer)
            visit(f, obj.*f.integer);
        else if (f.real)
            visit(f, obj.*f.real);
        else
            visit(f, obj.*f.text);
    }
}

} // namespace qkv
