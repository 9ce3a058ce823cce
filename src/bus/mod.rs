//! How actors and the API reach each other: the messages (`messages`), the actors' names
//! (`names`) and the registry of typed ports (`registry`), one `Recipient<M>` per message that
//! each actor registers when it starts. Nothing here knows an actor's type.

pub mod messages;
pub mod names;
pub mod registry;
